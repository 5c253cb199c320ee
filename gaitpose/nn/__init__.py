"""Networks (torch). ``build_model(cfg)`` is the single entry point used by training and export."""

from gaitpose.nn.student import ModelConfig, StudentPose, build_model, count_params_macs

__all__ = ["ModelConfig", "StudentPose", "build_model", "count_params_macs"]
