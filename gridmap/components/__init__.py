"""Components 部件 (CJ/T 214-2007): street furniture with owner, maintainer and versioned history."""
