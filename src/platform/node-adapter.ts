/**
 * The invoker's NodeAgent over the node agent's own typed client (src/node/client.ts): one call per
 * method, over `<state-dir>/node.sock`.
 */
import { isEphemeraError } from '../core/errors.js';
import { NodeClient } from '../node/client.js';
import type { ContainerSpec, InitValue, NodeAgent, NodeLoad, RunRequest, RunResult } from './agent.js';

export class NodeClientAgent implements NodeAgent {
  constructor(
    private readonly client: NodeClient,
    readonly name: string,
  ) {}

  async create(spec: ContainerSpec): Promise<{ id: string }> {
    const created = await this.client.createContainer(spec);
    return { id: created.id };
  }

  init(id: string, value: InitValue): Promise<{ statusCode: number; body: unknown }> {
    return this.client.init(id, { value });
  }

  run(id: string, request: RunRequest): Promise<RunResult> {
    return this.client.run(id, request);
  }

  async remove(id: string): Promise<void> {
    try {
      await this.client.removeContainer(id);
    } catch (err) {
      // The agent removes a container itself after a timeout: gone is what was asked for.
      if (!isEphemeraError(err, 'EPH_NODE_UNKNOWN_CONTAINER')) throw err;
    }
  }

  async state(): Promise<NodeLoad> {
    const info = await this.client.node();
    return { node: info.node, memory: info.memory, tenants: info.tenants };
  }
}

/** The NodeAgent for the `ephemera node` serving `socketPath`. */
export function connectNode(socketPath: string, name: string): NodeAgent {
  return new NodeClientAgent(new NodeClient(socketPath), name);
}
