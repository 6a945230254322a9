"""The fact base: one patient's facts as of the reference dates, with measures, exposures and clearance."""
