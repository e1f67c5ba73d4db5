import type { TaskView } from '../../shared/engine/dag-store.js';
import type { Role } from '../../shared/domain/roles.js';

/** A task as DagStore.getTasks returns it, for tests of code that only reads tasks. */
export function taskView(id: string, over: Partial<TaskView> & { role?: Role } = {}): TaskView {
  const role = over.role ?? 'backend';
  return {
    id,
    state: 'succeeded',
    spec: { id, role, title: `task ${id}`, description: `do ${id}`, dependsOn: [], acceptanceCriteria: [] },
    role,
    deps: [],
    dependents: [],
    remaining: 0,
    gen: 0,
    attempts: 1,
    depth: 0,
    origin: 'plan',
    replans: 0,
    ...over,
  };
}
