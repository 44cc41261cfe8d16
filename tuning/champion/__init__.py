"""The search's winner: chosen on validation, scored once on test, registered, served."""
