"""LiverSeg Studio desktop application (Qt). Imports ``core``; never imported by it."""
