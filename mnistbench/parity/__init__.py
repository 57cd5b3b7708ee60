"""The parts of `mnistbench verify` around the comparison engine (mnistbench.verify): the gradient check
against finite differences, and the files a verification writes (verify.md, verify.csv, the growth plot)."""
