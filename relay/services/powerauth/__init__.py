"""The PowerAuth Push Server face's services: devices, messages, campaigns, inbox and
application administration, on the unified registration model."""
