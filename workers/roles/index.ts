import type { Role } from '../../shared/domain/roles.js';
import { backendRole } from './backend.js';
import { devopsRole } from './devops.js';
import { frontendRole } from './frontend.js';
import type { RoleDefinition } from './role.js';
import { testingRole } from './testing.js';

/** Every worker role's actions, Observe probes and specialization. */
export const ROLE_DEFINITIONS: Readonly<Record<Role, RoleDefinition>> = {
  backend: backendRole,
  frontend: frontendRole,
  devops: devopsRole,
  testing: testingRole,
};

export function roleDefinition(role: Role): RoleDefinition {
  return ROLE_DEFINITIONS[role];
}
