# Example override: use your own trained model (see 'contextnet train --output MODEL.pt') with a
# larger ensemble and a different seed. Environment variables and '~' are expanded.
#   pipetask run ... -p pipelines/ContextNet.yaml -C contextnetClassifier:config/contextnetClassifier_model.py
config.modelPath = "$HOME/contextnet/models/contextnet.pt"  # noqa: F821
config.nEnsemble = 10  # noqa: F821
config.seed = 2018  # noqa: F821
