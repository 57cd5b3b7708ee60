"""`mnistbench verify`: every implementation with a twin against it, step by step (mnistbench.verify)."""
from __future__ import annotations

from pathlib import Path

from . import options


def add_verify(sub) -> None:
    verify = sub.add_parser("verify", help="each implementation against its twin, step by step and tensor by "
                                           "tensor; exit 1 when a pair differs")
    options.add(verify, "family", "impl", "data_root", "out")
    verify.add_argument("--steps", type=int, default=200, help="update steps compared (default %(default)s)")
    verify.add_argument("--dtype", type=options.comma_list(str, "--dtype"), default=["float32", "float64"],
                        help="float32, float64, bfloat16, or a comma list (default float32,float64)")
    verify.add_argument("--batch-size", type=int, help="batch size (default: the family's)")
    verify.add_argument("--seed", type=int, default=0, help="seed of weights and batch order (default 0)")
    verify.add_argument("--rtol", type=float, help="base rtol (default: torch.testing's for the dtype)")
    verify.add_argument("--atol", type=float, help="atol on the scale-normalised tensors (default: torch.testing's)")
    verify.add_argument("--no-gradcheck", action="store_true", help="skip the finite-difference gradient check")
    verify.set_defaults(handler=cmd_verify)


def cmd_verify(args) -> int:
    import torch  # heavy imports here, not when the parser is built

    from .. import data, env, harness, verify
    from ..config import ConfigError
    from ..parity import output

    for value, name in ((args.rtol, "--rtol"), (args.atol, "--atol")):
        if value is not None and not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
    for dtype in args.dtype:
        if dtype not in verify.VERIFY_DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; choose from {', '.join(verify.VERIFY_DTYPES)}")
    pairs = verify.pairs(args.family, args.impl)
    arrays = data.load_arrays("mnist", args.data_root)
    results = []
    for entry, twin in pairs:
        for dtype in args.dtype:
            result = verify.verify_pair(entry, twin, arrays, steps=args.steps, dtype=dtype,
                                        batch_size=args.batch_size, seed=args.seed, rtol=args.rtol,
                                        atol=args.atol, gradient_check=not args.no_gradcheck)
            results.append(result)
            print(f"{entry.family}/{entry.name} vs {twin.name} [{result.ran_in}]: {result.verdict}; gradcheck "
                  f"{result.gradcheck}; {result.comparison.summary()} ({result.seconds:.1f} s)", flush=True)
            if result.note:
                print(f"  note: {result.note}")
    out = Path(args.out or harness.default_out())
    machine = f"{env.cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    written = output.write(results, out, machine)
    differ = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(differ)} of {len(results)} agree; wrote {written['markdown']}, "
          f"{written['csv']} and {written['plot']}")
    return 1 if differ else 0
