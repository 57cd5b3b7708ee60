"""`python -m mnistbench`: a Ctrl-C even while the command line imports is exit 130 and one line."""
import sys

try:
    from .cli import program
except KeyboardInterrupt:
    print("mnistbench: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

program()
