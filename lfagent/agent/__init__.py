"""The agent: rounds of propose -> sandbox -> score -> keep -> refit, held in the run store."""
