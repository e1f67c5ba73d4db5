import type { Role } from './roles.js';

/**
 * What each role does and which actions it has, as the planner tells the LLM. It is data
 * here, not read from the workers' action registries, so the orchestrator plans without
 * loading the agent runtime; tests/unit/roles.test.ts holds every registry to this list.
 */
export interface RoleCard {
  specialization: string;
  actions: readonly string[];
}

const FILE_ACTIONS = ['read_file', 'write_file', 'list_files', 'check_file_exists'] as const;

export const ROLE_CATALOGUE: Readonly<Record<Role, RoleCard>> = {
  backend: {
    specialization: 'Python, Flask, Django, FastAPI, dependencies, venv',
    actions: ['create_venv', 'install_dependency', 'update_requirements', 'run_python', 'run_command', 'record_knowledge', ...FILE_ACTIONS],
  },
  frontend: {
    specialization: 'React, Vue, npm, package.json, webpack',
    actions: ['npm_install', 'npm_run', 'update_package_json', 'check_entry_point', 'build_frontend', 'run_command', 'record_knowledge', ...FILE_ACTIONS],
  },
  devops: {
    specialization: 'Docker, deployment, environment, CI/CD',
    actions: ['create_dockerfile', 'setup_env', 'build_image', 'run_container', 'deploy', 'run_command', 'record_knowledge', ...FILE_ACTIONS],
  },
  testing: {
    specialization: 'running tests, validation, debugging',
    actions: ['run_tests', 'check_syntax', 'validate_output', 'debug_error', 'report_followup', 'run_command', 'record_knowledge', ...FILE_ACTIONS],
  },
};
