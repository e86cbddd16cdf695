"""Declarative data contracts (one YAML per canonical table) and their loader."""

from data_contracts.loader import CONTRACT_NAMES, RECORD_CONTRACT, Column, Contract, Expectation, load_contract

__all__ = ["CONTRACT_NAMES", "RECORD_CONTRACT", "Column", "Contract", "Expectation", "load_contract"]
