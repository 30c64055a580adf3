# polyshop API gateway package: FastAPI front door over the pricing and inventory services.
__version__ = "0.1.0"
