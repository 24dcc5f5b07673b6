"""The currencies a price may be in: ISO 4217 codes of circulating currencies.

Kept in the code rather than fetched: the list changes a few times a decade, and a price in a
code nobody can pay with (``XYZ``) must be refused before a customer sees it. Fund codes (BOV,
CHE, ...), precious metals (XAU, ...), SDR and the testing codes (XTS, XXX) are not currencies a
shop prices in, so they are left out. Source: ISO 4217 list one, as amended up to 2025.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED
VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217_CURRENCIES: frozenset[str] = frozenset(_CODES.split())


def is_currency(code: str) -> bool:
    return code in ISO_4217_CURRENCIES


def validate_currency(code: str) -> None:
    if not is_currency(code):
        raise ValidationError("An ISO-4217 currency code such as EUR.", code="invalid_currency")
