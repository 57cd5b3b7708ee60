"""Interleaving across Python environments (`--interleave --python PY`): one worker process per
environment trains that environment's copy of every run, a block at a time when the driver asks.

The protocol is one JSON object a line on the worker's stdin and stdout (its own prints go to stderr):
  {"op": "start", "lane": n, "config": {...}, "data_root": ..., "group": ..., "order_seed": ...}
      -> {"step_seconds": s, "total_steps": n}   the lane is built and warmed up
  {"op": "block", "lane": n, "round": r, "steps": k}
      -> {"seconds": s, "steps": k, "epochs": [...], "result": {...} or null}
  {"op": "hello"} -> {"torch": ..., "prefix": ..., "mnistbench": ...}
Any failure answers {"error": "..."}. The driver asks one worker at a time: one computes, the others wait.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

from .config import ConfigError, RunConfig


@dataclass
class Worker:
    """A worker process of one environment, and the number of its lanes still going."""

    python: str
    process: subprocess.Popen
    lanes: int = 0
    hello: dict = field(default_factory=dict)

    def ask(self, message: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise RuntimeError(f"the worker of {self.python} ended (exit {self.process.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.python}: {reply['error']}")
        return reply

    def release(self) -> None:
        self.lanes -= 1
        if self.lanes <= 0 and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start(python: str) -> Worker:
    """A worker under `python`; ConfigError when that is no Python with mnistbench installed."""
    try:
        process = subprocess.Popen([python, "-m", "mnistbench.worker"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--python {python}: cannot start it ({exc.strerror or exc})") from None
    worker = Worker(python, process)
    try:
        worker.hello = worker.ask({"op": "hello"})
    except (RuntimeError, ValueError):
        process.kill()
        raise ConfigError(f"--python {python}: not a Python environment with mnistbench installed "
                          f"(`{python} -m mnistbench.worker` did not answer)") from None
    return worker


def remote_lane(worker: Worker, lane: int, cfg: RunConfig, group: str, order_seed: int, data_root):
    """lanes.local_lane's twin: the same sends and yields, trained by a worker process."""
    from .lanes import BlockDone
    from .result import Epoch
    from .resultfile import parse

    try:
        reply = worker.ask({"op": "start", "lane": lane, "config": cfg.to_dict(), "group": group,
                            "order_seed": order_seed, "data_root": str(data_root) if data_root else None})
        round_, steps = yield reply["step_seconds"], reply["total_steps"]
        while True:
            reply = worker.ask({"op": "block", "lane": lane, "round": round_, "steps": steps})
            result = parse(reply["result"]) if reply["result"] is not None else None
            epochs = tuple(Epoch(**epoch) for epoch in reply["epochs"])
            round_, steps = yield BlockDone(reply["seconds"], reply["steps"], epochs, result)
    finally:
        worker.release()


def remote_lanes(executor, todo, group: str, data_root=None) -> list:
    """(index, cfg, lane) for every run of todo in every environment of executor.pythons."""
    lanes = []
    for python in executor.pythons:
        worker = start(python)
        for lane, (index, cfg) in enumerate(todo):
            worker.lanes += 1
            lanes.append((index, cfg, remote_lane(worker, lane, cfg, group, executor.order_seed, data_root)))
    return lanes


# ---------------------------------------------------------------- in the worker process
def serve(requests, reply) -> None:
    """Answer the driver's requests (an iterable of lines) with reply(dict), until its stdin closes."""
    import torch

    from . import data, env
    from .lanes import local_lane
    from .local import SplitCache

    lanes, caches = {}, {}
    for line in requests:
        try:
            message = json.loads(line)
            op = message["op"]
            if op == "hello":
                reply({"torch": torch.__version__, "prefix": sys.prefix, "mnistbench": env.mnistbench_version()})
            elif op == "start":
                cfg = RunConfig.from_dict(message["config"])
                if cfg.dataset not in caches:
                    arrays = {cfg.dataset: data.load_arrays(cfg.dataset, message.get("data_root"))}
                    caches[cfg.dataset] = SplitCache(arrays, keep=64)
                lane = local_lane(cfg, caches[cfg.dataset].get(cfg), message["group"], message["order_seed"])
                lanes[message["lane"]] = lane
                step_seconds, total_steps = next(lane)
                reply({"step_seconds": step_seconds, "total_steps": total_steps})
            elif op == "block":
                done = lanes[message["lane"]].send((message["round"], message["steps"]))
                if done.result is not None:
                    del lanes[message["lane"]]
                reply({"seconds": done.seconds, "steps": done.steps, "epochs": [vars(e) for e in done.epochs],
                       "result": done.result.to_json() if done.result is not None else None})
            else:
                reply({"error": f"unknown request {op!r}"})
        except Exception as exc:  # noqa: BLE001 (every failure goes back to the driver, which names it)
            reply({"error": f"{type(exc).__name__}: {exc}"})


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything the training prints, from Python or C, goes to stderr, not into the protocol
    sys.stdout = sys.stderr

    def reply(message: dict) -> None:
        protocol.write(json.dumps(message, allow_nan=False) + "\n")
        protocol.flush()

    serve(sys.stdin, reply)


if __name__ == "__main__":
    main()
