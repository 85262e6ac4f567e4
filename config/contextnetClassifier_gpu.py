# Example override: require the first CUDA GPU (fail instead of falling back to the CPU) and use
# large batches.
#   pipetask run ... -p pipelines/ContextNet.yaml -C contextnetClassifier:config/contextnetClassifier_gpu.py
config.device = "cuda:0"  # noqa: F821
config.batchSize = 16384  # noqa: F821
config.setBatchSize = 256  # noqa: F821
