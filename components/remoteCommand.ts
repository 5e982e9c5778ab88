// Every remote command this program runs goes through here, so one fact holds
// for all of them: none reads its previous output. @pulumi/command otherwise
// sends the previous stdout/stderr as PULUMI_COMMAND_STDOUT/STDERR on every
// update and delete, and prints a warning on each one whose SSH server does not
// accept those variables (AcceptEnv) — as the real engine did when a node was
// removed. It would also send a secret stdout (a join token) through the
// environment.
import * as command from "@pulumi/command";
import type * as pulumi from "@pulumi/pulumi";

export function remoteCommand(name: string, args: command.remote.CommandArgs, opts?: pulumi.CustomResourceOptions): command.remote.Command {
  return new command.remote.Command(name, { ...args, addPreviousOutputInEnv: false }, opts);
}
