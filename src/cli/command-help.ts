/**
 * `kube-event-rules <command> --help`: what each command does, its arguments and an example.
 */
export const COMMAND_HELP: Record<string, string> = {
  serve: `usage: kube-event-rules [serve]

Runs the service: receives CloudEvents on POST / (or watches Events with STANDALONE=true), matches them
against the rules of RULES_DIR and of labelled ConfigMaps, and delivers. Every setting is an environment
variable (PORT, HOST, RULES_DIR, LOG_LEVEL, ADMIN_TOKEN_FILE, …): see the README's configuration table.
/playground/ serves the rule playground (its API takes the admin token).

  example: RULES_DIR=rules/ CLUSTER=off kube-event-rules serve`,

  validate: `usage: kube-event-rules validate [--team <namespace>] <file|dir>...

Checks rule documents (YAML or JSON, several per file with ---) or ConfigMap manifests holding them, exactly
as the service loads them. Exit 0 with a summary, or 1 with every problem: file, rule, field, and for
templates file:line:column (the file's line and column) with a caret. --team checks them as a team's
documents in that namespace, under the TEAM_* and DESTINATION_HOSTS_* settings of the environment.

  example: kube-event-rules validate rules/ deploy/base/example-rules.yaml`,

  test: `usage: kube-event-rules test --rules <file|dir> [--secrets <secrets.yaml>] [--objects <manifests.yaml>]
                             [--cluster] [--json] [--expect <golden.json> [--update-expect]] <event.json>... | -

Runs events through the rules as the service would and sends nothing. Prints per event every rule
evaluated, each condition with the value its fact had, and each request a destination would receive
(secret values redacted).

  --rules <file|dir>      rule documents or ConfigMap manifests (repeatable)
  --secrets <file>        Secret manifests for secretKeyRef (repeatable)
  --objects <file>        manifests as \`kubectl get -o yaml\` prints them (Namespaces, Pods, Deployments, HPAs,
                          Lists): the object, owner and namespace facts (repeatable)
  --cluster               look those objects up through the kubeconfig, read-only (--objects wins)
  --json                  the report as JSON
  --expect <golden.json>  compare the JSON report with a golden file: exit 1 and a diff when it differs
  --update-expect         write the golden file instead
  events                  CloudEvent files ({headers, body}), Event JSON, \`kubectl get events -o json\`, or - (stdin)

  example: kubectl get events -A -o json | kube-event-rules test --rules rules/ -`,

  playground: `usage: kube-event-rules playground [RULES_DIR] [--port <port, default 8090>] [--secrets <secrets.yaml>] [--cluster]

Serves the rule playground on http://127.0.0.1:<port>/playground/ (this machine only, no cluster needed):
pick or paste an event, edit a rule document with completion and inline errors, and see as you type which
rules match, why, and what each destination would receive. The rule files of RULES_DIR (default: ./rules
if it exists) are offered as starting points. --secrets gives Secret manifests for secretKeyRef; --cluster
looks objects up through the kubeconfig (read-only).

  example: kube-event-rules playground rules/ --port 9000`,
};

export const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h';
