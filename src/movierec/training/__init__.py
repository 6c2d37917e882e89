"""Training of the neural models: batches of pre-built index tensors, losses, the training loop
(plain torch, or PyTorch Lightning for callbacks and DDP), validation and early stopping.

Nothing here is imported by ``import movierec``; torch and Lightning load on first use.
"""
