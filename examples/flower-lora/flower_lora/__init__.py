"""Federated LoRA on all-MiniLM-L6-v2 with fedlora's aggregation in Flower."""
