import UnrollCLI
