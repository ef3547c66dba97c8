"""dqn-report: runs.py reads run dirs, stats.py holds the statistics, writer.py writes report.md and
report.json, plots.py the figures."""
