"""The clinical layer: what a doctor would see and do. It observes the disease process and
acts on it only through treatment (see docs/clinical.md)."""
