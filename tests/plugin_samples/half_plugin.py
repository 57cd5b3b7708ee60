"""A callable plugin that registers a family, then fails: what it registered must be taken back."""
import mnistbench


def register_all():
    mnistbench.register_family(mnistbench.Family("halfway", "never complete", {"lr": 0.1, "batch_size": 8,
                                                                              "epochs": 1, "patience": None}))
    mnistbench.register("halfway", "manual", lambda cfg, n_features, n_classes, generator: None)
    raise RuntimeError("configuration file missing")
