# Muster for Nushell: submit, watch and control runs on a Muster server, as records and tables.
#
#     use cli/nu/muster.nu *
#     batch submit deploy.cue --label {env: prod}
#     batch list | where status == failed | get id
#     batch logs $id --follow | where type =~ "task:failed"
#
# Every command calls the `muster` CLI with `-o json` and parses what it prints, so the module and
# the CLI share one client. The CLI is `$env.MUSTER_BIN` (default `muster`); the server and token
# come from `--server`/`--token` or, as for the CLI, `$env.MUSTER_SERVER`/`$env.MUSTER_TOKEN`.
# Errors (an unreachable server, an unknown run, an invalid workflow) become Nushell errors with
# the server's message; validation problems are in the error's help, one per line.

# The `muster` executable.
def muster-bin []: nothing -> string {
  $env.MUSTER_BIN? | default "muster"
}

# The environment for one CLI call: `--server` and `--token` override the inherited variables.
# The token travels in the environment, not the arguments, so it never shows in a process list.
def muster-env [server: any, token: any]: nothing -> record {
  {}
  | merge (if $server != null { {MUSTER_SERVER: $server} } else { {} })
  | merge (if $token != null { {MUSTER_TOKEN: $token} } else { {} })
}

# Runs `muster batch -o json ARGS` and parses its stdout.
#
# `accept` lists the exit codes whose stdout is data: 3 is a run that did not succeed (`--watch`,
# `--follow`), 2 with output is an invalid workflow's verdict (`--validate`). With `live`, what the
# CLI writes on stderr (progress) is shown as it comes, and also kept for the error message.
def run-muster [
  args: list<string>
  server: any
  token: any
  --accept: list<int> = [0]
  --live
  --span: any                 # where the error points: the run id or file the user typed
]: nothing -> any {
  let bin = (muster-bin)
  if (which $bin | is-empty) {
    error make {
      msg: $"cannot find the muster CLI \"($bin)\""
      help: "install muster, or point $env.MUSTER_BIN to it"
    }
  }
  let argv = ["batch" "--output" "json" ...$args]
  let result = with-env (muster-env $server $token) {
    if $live {
      run-external $bin ...$argv
      | tee --stderr { lines | each {|line| print --stderr $line } | ignore }
      | complete
    } else {
      run-external $bin ...$argv | complete
    }
  }
  if ($result.exit_code in $accept) and ($result.stdout | str trim | is-not-empty) {
    return ($result.stdout | from json)
  }
  if $result.exit_code == 0 {
    return null
  }
  muster-fail $result.stderr $result.exit_code $args $span
}

# Turns the CLI's stderr into a Nushell error: the `muster: …` line is the message, the lines
# before it (validation problems, one per line) the help.
def muster-fail [stderr: string, code: int, args: list<string>, span: any] {
  let lines = ($stderr | lines | where {|line| ($line | str trim) != "" })
  let main = ($lines | where {|line| $line | str starts-with "muster: " } | last)
  let msg = if $main == null {
    $"muster batch ($args | first) failed with exit code ($code)"
  } else {
    $main | str replace "muster: " ""
  }
  let details = ($lines | where {|line| not ($line | str starts-with "muster: ") })
  let help = if ($details | is-empty) {
    $"`muster batch ($args | str join ' ')` exited with code ($code)"
  } else {
    $details | str join "\n"
  }
  if $span == null {
    error make --unspanned {msg: $msg, help: $help}
  } else {
    error make {msg: $msg, label: {text: $"muster batch ($args | first)", span: $span}, help: $help}
  }
}

# `--flag key=value` arguments from a record.
def key-value-args [flag: string, values: any]: nothing -> list<string> {
  if $values == null { return [] }
  $values | transpose key value | each {|kv| [$flag $"($kv.key)=($kv.value)"] } | flatten
}

# An option with a value, when it was given.
def option-args [flag: string, value: any]: nothing -> list<string> {
  if $value == null { [] } else { [$flag ($value | into string)] }
}

# ISO timestamps of a record become Nushell datetimes, so `where created_at > ((date now) - 1day)`
# works; nulls stay null.
def with-dates [...fields: string]: record -> record {
  let row = $in
  $fields | reduce --fold $row {|field, acc|
    let value = ($acc | get --optional $field)
    if ($value | describe) == "string" {
      $acc | upsert $field ($value | into datetime)
    } else {
      $acc
    }
  }
}

# Run ids for completion: the latest runs, with their name and state.
def "nu-complete muster runs" [] {
  try {
    run-muster ["list" "--limit" "50"] null null
    | each {|run| {value: $run.id, description: $"($run.name) · ($run.status)"} }
  } catch {
    []
  }
}

def "nu-complete muster statuses" [] {
  [pending running paused succeeded failed cancelling cancelled rolling_back rolled_back]
}

def "nu-complete muster formats" [] {
  [cue json yaml]
}

# Submits a workflow file to the Muster server; the run starts at once.
#
# Returns `{id, name, status, created}`; with --validate `{valid, problems}`; with --dry-run the
# plan; with --watch the run's final status once it ended (progress shows on stderr meanwhile).
export def "batch submit" [
  file: path                  # the workflow file (.cue, .json, .yaml, .yml)
  --validate                  # only validate on the server; create no run
  --dry-run                   # only plan on the server; create no run
  --watch                     # follow the run until it ends and return its final status
  --set: record               # input values, e.g. {version: "1.2"}, checked against the workflow's inputs
  --environment: string       # one of the workflow's environments (`muster batch submit --env`)
  --label: record             # labels on the run, e.g. {env: prod}
  --idempotency-key: string   # submit once per key: a repeat returns the existing run
  --format: string@"nu-complete muster formats" # the source format, when the extension does not tell it
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  let args = [
    "submit" $file
    ...(if $validate { ["--validate"] } else { [] })
    ...(if $dry_run { ["--dry-run"] } else { [] })
    ...(if $watch { ["--watch"] } else { [] })
    ...(key-value-args "--set" $set)
    ...(option-args "--env" $environment)
    ...(key-value-args "--label" $label)
    ...(option-args "--idempotency-key" $idempotency_key)
    ...(option-args "--format" $format)
  ]
  let span = (metadata $file).span
  if $watch {
    run-muster $args $server $token --accept [0 3] --live --span $span
    | with-dates created_at started_at finished_at
  } else if $validate {
    run-muster $args $server $token --accept [0 2] --span $span
  } else {
    run-muster $args $server $token --span $span
  }
}

# A run's state, its operations and task counts.
#
# With --follow, waits until the run ends (progress on stderr) and returns its final status.
export def "batch status" [
  id: string@"nu-complete muster runs" # the run
  --follow                    # wait for the run to end, showing progress
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  let status = if $follow {
    run-muster ["status" $id "--follow"] $server $token --accept [0 3] --live --span (metadata $id).span
  } else {
    run-muster ["status" $id] $server $token --span (metadata $id).span
  }
  $status | with-dates created_at started_at finished_at
}

# Runs, newest first: one row per run with its id, name, status, labels and times.
#
#     batch list | where status == failed | get id
export def "batch list" [
  --status: string@"nu-complete muster statuses" # only runs in this state
  --name: string              # only runs of this workflow
  --label: record             # only runs with these labels, e.g. {env: prod}
  --limit: int                # runs per page
  --all                       # every matching run, following the pages
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> table {
  let args = [
    "list"
    ...(option-args "--status" $status)
    ...(option-args "--name" $name)
    ...(key-value-args "--label" $label)
    ...(option-args "--limit" $limit)
    ...(if $all { ["--all"] } else { [] })
  ]
  run-muster $args $server $token
  | each {|run| $run | with-dates created_at started_at finished_at }
}

# A run's events: one row per event (seq, type, operation, task, data).
#
# With --follow, rows stream as events happen until the run ends:
#
#     batch logs $id --follow | where type == "task:output" | each {|e| print $e.data.line }
export def "batch logs" [
  id: string@"nu-complete muster runs" # the run
  --follow (-f)               # stream events until the run ends
  --after: int                # only events after this sequence number
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
] {
  let args = ["logs" $id ...(option-args "--after" $after)]
  if not $follow {
    return (run-muster $args $server $token --span (metadata $id).span | each {|event| $event | with-dates at })
  }
  let bin = (muster-bin)
  # One JSON event a line on stdout; stderr joins the same pipe so that a failure (the last
  # `muster: …` line) becomes an error here instead of a message lost beside the stream.
  with-env (muster-env $server $token) {
    run-external $bin "batch" "--output" "json" ...$args "--follow" o+e>| lines
    | each {|line|
      if ($line | str starts-with "{") {
        $line | from json | with-dates at
      } else if ($line | str starts-with "muster: ") {
        let span = (metadata $id).span
        error make {msg: ($line | str replace "muster: " ""), label: {text: "muster batch logs", span: $span}}
      } else {
        print --stderr $line
      }
    }
  }
}

# Rolls a run back: compensates its finished tasks in reverse order. Returns `{id, status}`.
export def "batch rollback" [
  id: string@"nu-complete muster runs" # the run
  --to-checkpoint: int        # only undo what finished after this checkpoint
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  let args = ["rollback" $id ...(option-args "--to-checkpoint" $to_checkpoint)]
  run-muster $args $server $token --span (metadata $id).span
}

# Retries a run's failed tasks, or only one operation's. Returns `{id, status}`.
export def "batch retry" [
  id: string@"nu-complete muster runs" # the run
  operation?: string          # only this operation
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  let args = ["retry" $id ...(if $operation == null { [] } else { [$operation] })]
  run-muster $args $server $token --span (metadata $id).span
}

# Pauses a run: running tasks finish, no new ones start. Returns `{id, status}`.
export def "batch pause" [
  id: string@"nu-complete muster runs" # the run
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  run-muster ["pause" $id] $server $token --span (metadata $id).span
}

# Resumes a paused run (also approves a canary waiting for approval). Returns `{id, status}`.
export def "batch resume" [
  id: string@"nu-complete muster runs" # the run
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  run-muster ["resume" $id] $server $token --span (metadata $id).span
}

# Cancels a run: running tasks finish, the rest is skipped. Returns `{id, status}`.
export def "batch cancel" [
  id: string@"nu-complete muster runs" # the run
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  run-muster ["cancel" $id] $server $token --span (metadata $id).span
}

# Stops a run now: running tasks are killed. Returns `{id, status}`.
export def "batch terminate" [
  id: string@"nu-complete muster runs" # the run
  --server: string            # the orchestrator's URL (default $env.MUSTER_SERVER)
  --token: string             # the bearer token (default $env.MUSTER_TOKEN)
]: nothing -> record {
  run-muster ["terminate" $id] $server $token --span (metadata $id).span
}
