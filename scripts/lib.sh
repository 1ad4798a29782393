# Shared by the activity scripts (sourced, not run): finding the runs an activity builds on.

# run_field FIELD LABEL: one field (path, tickets, ...) of the latest run labelled LABEL; empty when none.
run_field() {
  make --no-print-directory -s runs RUNS="$2" SHOW="$1" 2>/dev/null || true
}

# require_run LABEL WHAT: stop the script with one line unless a run labelled LABEL exists.
require_run() {
  if [ -z "$(run_field path "$1")" ]; then
    echo "error: no run labelled $1 ($2)" >&2
    exit 1
  fi
}
