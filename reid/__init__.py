"""reid: the library behind the reid-book replication of five person re-ID loss papers.

Data flows one way: data -> models -> losses -> engine -> metrics -> notebooks -> book.
"""

__version__ = "0.1.0"
