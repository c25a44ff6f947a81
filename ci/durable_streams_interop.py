"""Reads Flue streams with the Durable Streams Python client from PyPI (a client we did not
write): a finished run and an agent instance, in catch-up, long-poll and SSE modes, and resumed
from a saved offset. Exits non-zero on the first mismatch.

Usage: python3 durable_streams_interop.py BASE_URL RUN_ID AGENT_STREAM_URL RESUME_OFFSET
  RESUME_OFFSET: the offset the server returned for the instance's second prompt.
"""
import sys

from durable_streams import stream

base, run_id, agent_url, resume_offset = sys.argv[1:5]
run_url = f"{base}/runs/{run_id}"
failures = []


def check(what, condition):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def events(url, live, offset="-1", until=None):
    """Every event of the stream from `offset`, as the client delivers them, until `until` says stop
    (live modes never stop by themselves on this client version)."""
    seen = []
    with stream(url, offset=offset, live=live, timeout=30) as response:
        for item in response.iter_events(mode="json"):
            batch = item.data if isinstance(item.data, list) else [item.data]
            seen.extend(batch)
            if until and any(until(event) for event in batch):
                break
    return seen


def contiguous(seen, first=0):
    return [event["eventIndex"] for event in seen] == list(range(first, first + len(seen)))


is_run_end = lambda event: event.get("type") == "run_end"

catch_up = events(run_url, live=False)
check(f"run, catch-up: {len(catch_up)} events from run_start to run_end",
      catch_up and catch_up[0]["type"] == "run_start" and catch_up[-1]["type"] == "run_end")
check("run, catch-up: eventIndex 0..n without gaps or repeats", contiguous(catch_up))

for mode in ("long-poll", "sse"):
    live = events(run_url, live=mode, until=is_run_end)
    check(f"run, {mode}: the same events as catch-up", live == catch_up)

# Resuming from a saved offset is checked on the agent instance below: the offset the server
# returned for the second prompt is in the middle of the stream (a finished run is one batch).

agent_all = events(agent_url, live=False)
check(f"agent, catch-up: {len(agent_all)} events, eventIndex contiguous", agent_all and contiguous(agent_all))
settled = [event for event in agent_all if event.get("type") == "submission_settled"]
check("agent, catch-up: two submissions settled", len(settled) == 2)

second = settled[1]["submissionId"]
is_second_settled = lambda event: event.get("type") == "submission_settled" and event.get("submissionId") == second
for mode in (False, "long-poll", "sse"):
    resumed = events(agent_url, live=mode, offset=resume_offset, until=is_second_settled)
    check(f"agent, resumed from the second prompt's offset ({mode}): exactly its events",
          resumed and resumed[0]["eventIndex"] == agent_all.index(next(e for e in agent_all if e.get("submissionId") == second))
          and resumed == agent_all[resumed[0]["eventIndex"]:])

sys.exit(1 if failures else 0)
