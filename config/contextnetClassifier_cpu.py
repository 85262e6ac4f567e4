# Example override: run ContextNet on the CPU even where a GPU is present, with smaller batches
# (less memory), e.g. on a shared login node.
#   pipetask run ... -p pipelines/ContextNet.yaml -C contextnetClassifier:config/contextnetClassifier_cpu.py
config.device = "cpu"  # noqa: F821
config.batchSize = 1024  # noqa: F821
config.setBatchSize = 16  # noqa: F821
