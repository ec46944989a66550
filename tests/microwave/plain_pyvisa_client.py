"""A plain pyvisa-py session against the mock VNA, as in the README: no labpnn imports.

Run as ``python plain_pyvisa_client.py TCPIP::127.0.0.1::PORT::SOCKET``; prints a JSON line
with the number of points, |S21| statistics and whether labpnn was imported.
"""

import json
import sys

import numpy as np
import pyvisa


def main(address: str) -> None:
    rm = pyvisa.ResourceManager("@py")
    vna = rm.open_resource(address, read_termination="\n", write_termination="\n", timeout=5000)
    idn = vna.query("*IDN?")
    vna.write("FORM:BORD SWAP")
    vna.write("FORM:DATA REAL,64")
    vna.write("TRIG:SOUR BUS")
    vna.write("SENS1:FREQ:STAR 2.0E9;:SENS1:FREQ:STOP 2.5E9;:SENS1:SWE:POIN 401")
    vna.write("CALC1:PAR:COUN 1")
    vna.write("CALC1:PAR1:DEF S21")
    vna.write("CALC1:PAR1:SEL")
    vna.write("TRIG:SING")
    assert vna.query("*OPC?").strip() == "1"
    data = vna.query_binary_values(
        "CALC1:DATA:SDAT?", datatype="d", is_big_endian=False, container=np.array
    )
    error = vna.query("SYST:ERR?")
    vna.close()
    s21 = data[0::2] + 1j * data[1::2]
    print(
        json.dumps(
            {
                "idn": idn,
                "points": len(s21),
                "mean_abs_s21": float(np.abs(s21).mean()),
                "error": error,
                "labpnn_imported": any(m.startswith("labpnn") for m in sys.modules),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
