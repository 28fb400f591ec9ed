// dlion-train: data-parallel training with Distributed Lion and its baselines.
TrainCommand.main()
