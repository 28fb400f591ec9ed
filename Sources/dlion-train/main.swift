// dlion-train: data-parallel training with Distributed Lion and its baselines.
import Training

BLAS.restartWithSleepingIdleThreads()
TrainCommand.main()
