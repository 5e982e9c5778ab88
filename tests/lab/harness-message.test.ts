// A failed deploy's error repeats the live harness's own message (lab/stack.ts,
// deployWithHarness), so a test report that shows only errors (as CI's tail
// does) still names the resource and Docker's answer.
import { describe, expect, it } from "vitest";
import { harnessMessage } from "../../lab/stack";

describe("harnessMessage", () => {
  it("is the harness's last 'live harness: …' message, with the lines after it", () => {
    const stderr = [
      "    cannot reach 172.28.0.12:22 yet (ssh: connect to host 172.28.0.12 port 22: No route to host); retry 2/20",
      "",
      "live harness: command:remote:Command swarm-roles failed after 1.1s: command:remote:Command swarm-roles: create command exited 1 on root@172.28.0.13:22",
      "    Error response from daemon: rpc error: code = NotFound desc = can't find manager in raft memberlist",
      "",
    ].join("\n");
    expect(harnessMessage(stderr)).toBe(
      "command:remote:Command swarm-roles failed after 1.1s: command:remote:Command swarm-roles: create command exited 1 on root@172.28.0.13:22\n" +
        "    Error response from daemon: rpc error: code = NotFound desc = can't find manager in raft memberlist",
    );
  });

  it("is the tail of stderr when the harness died before its message, and says so when there is nothing", () => {
    expect(harnessMessage("node: out of memory\n")).toBe("node: out of memory");
    expect(harnessMessage("")).toBe("it printed no error (see its output above)");
  });
});
