"""Importers that fill datasets: images, triplet files, a rendered fonts dataset, random tasks.

Each module is a service with keyword-only arguments that returns a report; the management
commands of the same names parse options, show progress and print the report.
"""
