"""GVE fine-tuning: LoRA + symmetric InfoNCE under the Modality Pyramid curriculum (SPEC §4–5)."""
