"""What a run costs, measured so that it describes the run and not the machine's load.

- threads.py: torch's intra-op threads per job (`threads=auto`): the CPUs this process may use, shared
  fairly with the other lossbench runs on the host, so parallel jobs do not oversubscribe the cores;
- energy.py: energy attributed to the run (CodeCarbon for the hardware database and carbon intensity;
  NVML counters for GPUs; the process's own CPU time for modelled CPU and RAM energy), each component
  with its source;
- flops.py: forward + backward FLOPs of the whole training run (torch.utils.flop_counter, plus the
  declared formula of each distance head).
"""
