"""lora_edu: the package behind the course — from matrix rank to LoRA fine-tuning of a small GPT."""
__version__ = "0.1.0"
