"""Quality: the vignettes, their coverage, the mutation check and the synthetic cohorts."""
