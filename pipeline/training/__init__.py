"""Training: the cascade with the paper's recipe (`steps`: optimiser, schedule, one step, a run's state) and
PWC-Net's pretraining on rendered motion and real footage (`flow`: pairs, loss, scores); the run folder
both keep (`run_folder`: config, ``last.pt``, log, budget clock). The commands that run them are
``cdvd-train`` and ``cdvd-pretrain-flow`` (`pipeline.cli.train`, `pipeline.cli.pretrain_flow`).
"""
