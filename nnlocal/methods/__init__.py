"""The five methods, one readable module each (import the one you need: ``from nnlocal.methods import pan``)."""
