"""LiteFrame: the compact student video encoder, Compressed Token Distillation and Language Model Adaptation."""
