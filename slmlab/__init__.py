"""slmlab: frontier API versus a portfolio of small local models, measured on your own hardware and traffic."""

__version__ = "0.1.0"
