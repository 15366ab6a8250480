/**
 * A hosting node on one loopback address, as the demo and the serving tests need it: the agent,
 * plus a real nginx (own prefix, config and pid file) serving the agent's rendered sites when
 * nginx is installed. All nodes share one content folder, standing in for the NAS.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startAgentProcess, type AgentProcess } from "./agent-process";
import { startNginx, type NginxProcess } from "./nginx";

export interface HostingNodeOptions {
  host: string;
  name: string;
  token: string;
  /** The shared content folder (the NAS). */
  contentRoot: string;
  /** nginx binary; without it the agent runs config-only (the embedded default). */
  nginxBin?: string;
}

export interface HostingNode {
  readonly name: string;
  readonly agent: AgentProcess;
  readonly nginx?: NginxProcess;
  /** The agent's API URL. */
  readonly url: string;
  /** Stops nginx and the agent by pid and removes their temporary folders. */
  stop(): Promise<void>;
}

export async function startHostingNode(options: HostingNodeOptions): Promise<HostingNode> {
  const confDir = fs.mkdtempSync(path.join(os.tmpdir(), `lbh-${options.name}-sites-`));
  let nginx: NginxProcess | undefined;
  let agent: AgentProcess | undefined;
  try {
    if (options.nginxBin)
      nginx = await startNginx({ bin: options.nginxBin, host: options.host, includeDirs: [confDir] });
    agent = await startAgentProcess({
      host: options.host,
      name: options.name,
      token: options.token,
      contentRoot: options.contentRoot,
      nginxConfDir: confDir,
      ...(nginx
        ? { nginx: { bin: nginx.bin, mainConf: nginx.mainConf, prefix: nginx.prefix }, httpListen: nginx.listen }
        : {}),
    });
  } catch (error) {
    await nginx?.stop();
    fs.rmSync(confDir, { recursive: true, force: true });
    throw error;
  }
  const started = agent;
  return {
    name: options.name,
    agent: started,
    nginx,
    url: started.url,
    async stop() {
      await started.stop();
      started.cleanup();
      await nginx?.stop();
      fs.rmSync(confDir, { recursive: true, force: true });
    },
  };
}
