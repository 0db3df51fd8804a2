"""A question of the reference system's set (its question 71) and a grounded answer to it, for judge tests."""

from __future__ import annotations

QUESTION = (
    "Apesar do grande avanço e aplicação do Deep Learning, qual é a principal dificuldade que os especialistas "
    "enfrentam em relação ao funcionamento dessa tecnologia?"
)
GOOD = (
    "A principal dificuldade é a falta de explicabilidade do funcionamento das redes neurais profundas [1]. "
    "Ainda há pesquisas em andamento para solucionar esse problema [1]."
)
