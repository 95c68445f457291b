#!/usr/bin/env bash
# GPU-host smoke test of the compose stack (gpu profile). UNRUN: written and checked by reading
# only (no Docker engine or GPU where it was written). Needs .env (cp .env.example .env).
# Steps: up + health, a 5-video synth job captioned by vLLM, a 20-step train job, an eval on
# UVRB-mini, a search. Prints each step's result; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
DC=(docker compose --profile gpu)
RUN=("${DC[@]}" exec -T api-gpu)  # univr CLI inside the stack (stack env, shared /var/lib/univr)
WORK=/var/lib/univr/smoke        # on the univrhome volume every univr service mounts
TIMEOUT_S=${SMOKE_TIMEOUT_S:-3600}

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
univr() { "${RUN[@]}" univr "$@"; }
# poll_job KIND ID: wait until the jobs row leaves pending/running; print it; fail unless completed
poll_job() {
  local end=$((SECONDS + TIMEOUT_S)) row
  while :; do
    row=$("${RUN[@]}" python -c "
import json, sys
from shared.db import session_scope
from shared.db.models import Job
with session_scope() as s:
    j = s.get(Job, sys.argv[1])
    print(json.dumps({'state': str(j.state), 'error': j.error, 'result': j.result} if j else {}))
" "$2")
    case "$row" in *'"completed"'*) echo "$1 $2: $row"; return 0 ;;
                   *'"failed"'*|*'"cancelled"'*|'{}') fail "$1 $2: $row" ;; esac
    ((SECONDS < end)) || fail "$1 $2 still not done after ${TIMEOUT_S}s: $row"
    sleep 10
  done
}

step "up (vLLM must be healthy before the vLLM caption worker starts)"
"${DC[@]}" up -d --build
end=$((SECONDS + 1800))
until curl -fsS localhost:8080/healthz >/dev/null; do
  ((SECONDS < end)) || fail "api-gpu not healthy after 30 min"; sleep 10
done
"${DC[@]}" ps
univr config show --json | grep -c '"device": "cuda"' >/dev/null || fail "api-gpu is not on cuda"

step "synth: 5 videos, vLLM captioner"
univr media generate --out "$WORK/raw" --videos 5 --no-failures
job=$(univr synth submit "$WORK/raw/manifest.jsonl" --fresh --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"])')
poll_job synth "$job"
univr synth status "$job"
# grep -c, not -q: with pipefail an early-exiting grep would fail the pipe on SIGPIPE
"${DC[@]}" exec -T caption-worker-vllm univr config show --json | grep -c '"backend": "openai"' >/dev/null \
  || fail "caption worker is not on the vLLM captioner"
n=$("${DC[@]}" logs vllm | grep -c 'POST /v1/chat/completions HTTP/1.1" 200' || true)
echo "vLLM answered $n caption requests"; ((n > 0)) || fail "vLLM served no caption"

step "train: 20 steps"
snap=$(univr data snapshot --name smoke --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
job=$(univr train submit --snapshot "$snap" --steps 20 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"])')
poll_job train "$job"

step "eval: UVRB-mini"
univr uvrb mini --out "$WORK/uvrb-mini"
univr eval run --uvrb "$WORK/uvrb-mini" --out "$WORK/uvrb-mini.json"

step "search (index the synthesized clips, promote, query)"
ver=$(univr index build --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
univr index promote "$ver" --force --json
out=$(univr search "a red circle moving left" --top-k 3 --json)
echo "$out"
[[ "$out" == *'"score"'* ]] || fail "search returned no hits"
echo; echo "gpu-smoke: all steps passed"
