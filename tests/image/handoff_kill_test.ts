/**
 * A killed container: SIGKILL (`docker kill`, as the OOM killer and an
 * expired stop timeout also deliver) leaves the runtime no moment to empty the
 * handoff file. The name stays while phantun's TUN is gone with phantun; the
 * README's traffic check tells the two apart; the next start writes the file
 * again.
 */
import assert from "node:assert/strict";
import { readmeBlock } from "../../e2e/topology.ts";
import {
  assertReadmeStop,
  cmd,
  device,
  DOCKER,
  docker,
  exec,
  HOST_CLIENT,
  imageTest,
  inspect,
  installTmpfiles,
  ipOf,
  NAMES,
  PREFIX,
  readmeOk,
  remove,
  tunNode,
  waitForLink,
  withHosts,
} from "./harness.ts";

imageTest(
  "docker kill leaves the handoff file holding ptun0 while ptun0 is gone, the README's traffic check fails on the stale name, and the next start writes the file again",
  async () => {
    const tun = await tunNode();
    const root = await installTmpfiles();
    const file = `${root}/run/phantun/client.iface`;
    const name = `${PREFIX}client`;
    await withHosts(DOCKER, "kill", async (hosts) => {
      /** README's traffic-seen block, run on the client host: its exit code and output. */
      const check = async () => {
        const pid = await inspect(DOCKER, "{{.State.Pid}}", hosts.client);
        const script = readmeBlock("traffic-seen")
          .replace("/run/phantun/client.iface", file);
        const { code, stdout, stderr } = await exec(
          cmd`nsenter -n -t ${pid} sh -ec ${script}`,
        );
        return { code, output: stdout + stderr };
      };
      try {
        await readmeOk(DOCKER, HOST_CLIENT, [
          hosts.on(hosts.client),
          device(tun),
          ["/run/phantun/client.iface", file],
          NAMES,
          ["server.example.com", await ipOf(DOCKER, hosts.server)],
        ]);
        await waitForLink(DOCKER, name, "ptun0");
        assert.equal(Deno.readTextFileSync(file), "ptun0");
        const live = await check();
        assert.equal(live.code, 0, live.output);
        assert.match(live.output, /^\d+: ptun0: /);

        await docker(cmd`kill ${name}`);
        assert.equal(await inspect(DOCKER, "{{.State.ExitCode}}", name), "137");
        assert.equal(Deno.readTextFileSync(file), "ptun0");
        const stale = await check();
        assert.equal(stale.code, 1, stale.output);
        assert.equal(stale.output, 'Device "ptun0" does not exist.\n');

        const killed = Deno.statSync(file).mtime!.getTime();
        await docker(cmd`start ${name}`);
        await waitForLink(DOCKER, name, "ptun0");
        assert.equal(Deno.readTextFileSync(file), "ptun0");
        assert.ok(
          Deno.statSync(file).mtime!.getTime() > killed,
          "not rewritten",
        );
        assert.equal((await check()).code, 0);

        await assertReadmeStop(DOCKER, name);
        assert.equal(Deno.readTextFileSync(file), "");
        const empty = await check();
        assert.equal(empty.code, 1, empty.output);
        assert.equal(empty.output, 'Device "" does not exist.\n');
      } finally {
        await remove(DOCKER, name);
      }
    });
  },
);
