"""The paper's figures and tables, one entry each, drawn from ordinary lottery run directories.

    python -m experiments.fig2 --preset=cpu        # fig2 fig3 fig4 fig5 fig6 fig7 hessian

Each entry runs (or reuses) the lottery runs it needs through `python -m lottery_jax.main`
with a config file and variant (`experiments.runs`), then writes its figure(s), table.md and a
README.md page into experiments/results/<item>/ (`experiments.cli`, `experiments.page`).
"""
