"""A callable plugin that registers a name taken already (softmax/manual) beside a name of its own."""
import mnistbench
from mnistbench.models import softmax


def register_all():
    mnistbench.register("softmax", "manual", softmax.builtin, description="clashes with the built-in one")
    mnistbench.register("softmax", "clash_ok", softmax.builtin, description="a name of its own")
