import { getContainerRuntimeClient, type ContainerRuntimeClient } from 'testcontainers';

/**
 * Whether a Docker engine answers, found the way testcontainers finds one (DOCKER_HOST, the
 * Docker context, ~/.testcontainers.properties, the default sockets). The suites that need
 * an engine run when it does and are left out with one line when it does not; with
 * CODEGOD_TEST_REQUIRE_ENGINE=1 (CI) a missing engine fails the run instead.
 */

/** Suites that cannot run without an engine: the image, the compose stack, the devops engine. */
export const ENGINE_SUITES = 'tests/e2e/deployment';

export type EngineProbe =
  | { reachable: true; client: ContainerRuntimeClient; endpoint: string }
  | { reachable: false; endpoint: string; reason: string };

const DEFAULT_ENDPOINT = 'unix:///var/run/docker.sock';

export function engineRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CODEGOD_TEST_REQUIRE_ENGINE === '1';
}

let probed: Promise<EngineProbe> | undefined;

export function probeDockerEngine(): Promise<EngineProbe> {
  probed ??= (async (): Promise<EngineProbe> => {
    const endpoint = process.env.DOCKER_HOST ?? DEFAULT_ENDPOINT;
    try {
      const client = await getContainerRuntimeClient();
      return { reachable: true, client, endpoint: client.info.containerRuntime.remoteSocketPath ?? endpoint };
    } catch (err) {
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? 'no answer';
      return { reachable: false, endpoint, reason };
    }
  })();
  return probed;
}

/** Whether containers on this engine can use bridge networks and published ports. */
export async function hasBridgeNetwork(client: ContainerRuntimeClient): Promise<boolean> {
  try {
    await client.network.getById('bridge').inspect();
    return true;
  } catch {
    return false;
  }
}
