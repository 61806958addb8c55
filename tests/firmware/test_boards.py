"""Board definitions (boards/*.json), node configs and `becomingone boards`."""
import copy
import json

import pytest

from becomingone import boards
from becomingone.boards import BoardError, load_board, merged_config, validate_board
from becomingone.cli import main
from kairos import Channel, Normalizer

SHIPPED = ["esp32-devkit", "esp32-s3", "pi-zero-w", "pico", "pico-w", "sim"]
SECRET = "hunter2-Sup3rSecret"
MQTT_SECRET = "mq-pass-0xDEADBEEF"


def raw(name):
    return json.loads((boards.boards_dir() / f"{name}.json").read_text())


def channel_of(sensor):
    norm = Normalizer(sensor["offset"], sensor["mul"], sensor["shift"])
    ch = Channel(
        lags=tuple(sensor["lags"]),
        s=sensor["s"],
        s0=sensor["s0"],
        omega=sensor["omega"],
        ic=sensor["ic"],
        hysteresis=sensor["hysteresis"],
        dwell=sensor["dwell"],
    )
    return norm, ch


# -- shipped boards -----------------------------------------------------------


def test_the_six_boards_are_shipped():
    assert boards.list_boards() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_board_validates(name):
    board = load_board(name)
    assert board["board"] == name
    assert board["chip"] in boards.CHIPS
    # The files are complete: validation adds only the chip-free defaults.
    assert raw(name)["sensors"][0].keys() <= board["sensors"][0].keys()
    assert load_board(boards.boards_dir() / f"{name}.json") == board


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_board_sensors_build_real_kernels(name):
    for sensor in load_board(name)["sensors"]:
        norm, ch = channel_of(sensor)
        for x in (0, 1, 1 << 15, 65535, -(1 << 20), 1 << 20):
            assert -16384 <= norm(x) <= 16384
            ch.step(norm(x))


def test_filled_defaults_are_the_kernels():
    data = raw("sim")
    for key in boards.CHANNEL_DEFAULTS:
        del data["sensors"][0][key]
    del data["outputs"]
    sensor = validate_board(data)["sensors"][0]
    ch = Channel()
    norm = Normalizer()
    assert tuple(sensor["lags"]) == ch.lags
    assert (sensor["s"], sensor["s0"], sensor["omega"]) == (ch.s, ch.s0, ch.omega)
    assert (sensor["ic"], sensor["hysteresis"], sensor["dwell"]) == (
        ch.ic, ch.hysteresis, ch.dwell)
    assert (sensor["offset"], sensor["mul"], sensor["shift"]) == (
        norm.offset, norm.mul, norm.shift)
    assert validate_board(data)["outputs"] == []
    assert "lags" not in data["sensors"][0]  # the input is not modified


def test_sim_board_has_coherent_and_noisy_channels():
    sensors = load_board("sim")["sensors"]
    assert 4 <= len(sensors) <= 5
    periods = {s["period"] for s in sensors if s["lags"][-1] == s["period"]}
    assert periods >= {16, 32, 64}
    assert any(s["noise"] > 4 * s["amp"] for s in sensors)
    outputs = {o["kind"] for o in load_board("sim")["outputs"]}
    assert outputs == {"led", "neopixel", "buzzer", "motor"}


def test_real_pin_facts():
    devkit, s3 = load_board("esp32-devkit"), load_board("esp32-s3")
    pico, pico_w, pi = load_board("pico"), load_board("pico-w"), load_board("pi-zero-w")
    assert {"kind": "led", "name": "led", "pin": 2} in devkit["outputs"]
    assert all(32 <= s["pin"] <= 39 for s in devkit["sensors"] if s["kind"] in ("adc", "mic"))
    assert any(o["kind"] == "neopixel" and o["pin"] in (38, 48) for o in s3["outputs"])
    assert any(o["pin"] == 25 for o in pico["outputs"] if o["kind"] == "led")
    assert any(o["pin"] == "LED" for o in pico_w["outputs"] if o["kind"] == "led")
    assert pi["runtime"] == "cpython" and pi["adc_bits"] == 0
    assert all(s["i2c"]["bus"] == 1 and s["i2c"]["addr"] == 0x76
               for s in pi["sensors"] if s["kind"] == "bme280")
    assert load_board("sim")["runtime"] == "any"


# -- bad board definitions ----------------------------------------------------


def _set(path, value):
    def edit(b):
        *parents, last = path
        node = b
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


def _del(path):
    def edit(b):
        *parents, last = path
        node = b
        for p in parents:
            node = node[p]
        del node[last]
    return edit


def _custom(b):
    b["board"] = "my-board"
    del b["chip"]


def _append_sensor(sensor):
    return lambda b: b["sensors"].append(sensor)


# (board, edit, field path the message must start with, fragment it must contain)
BAD = [
    ("esp32-devkit", _set(["weight"], "2"), "weight", "expected an integer"),
    ("esp32-devkit", _set(["weight"], True), "weight", "expected an integer"),
    ("esp32-devkit", _set(["weight"], 256), "weight", "1..255"),
    ("esp32-devkit", _set(["period_ms"], 0), "period_ms", "1..60000"),
    ("esp32-devkit", _set(["report_every"], 65536), "report_every", "1..65535"),
    ("esp32-devkit", _del(["title"]), "title", "missing"),
    ("esp32-devkit", _del(["sensors", 0, "name"]), "sensors[0].name", "missing"),
    ("esp32-devkit", _set(["colour"], "red"), "colour", "unknown key"),
    ("esp32-devkit", _set(["sensors", 1, "hysterisis"], 5), "sensors[1].hysterisis",
     "unknown key"),
    ("esp32-devkit", _set(["sensors"], {}), "sensors", "expected a list"),
    ("esp32-devkit", _set(["sensors"], []), "sensors", "1..8"),
    ("esp32-devkit", _set(["runtime"], "lua"), "runtime", "not one of"),
    ("esp32-devkit", _set(["runtime"], "cpython"), "runtime", "micropython"),
    ("esp32-devkit", _set(["hal"], "pi"), "hal", "machine"),
    ("esp32-devkit", _set(["sensors", 0, "lags"], [2, 8, 4]), "sensors[0].lags",
     "strictly increasing"),
    ("esp32-devkit", _set(["sensors", 0, "lags"], [0, 4]), "sensors[0].lags",
     "strictly increasing"),
    ("esp32-devkit", _set(["sensors", 0, "lags"], [2, 2048]), "sensors[0].lags", "1024"),
    ("esp32-devkit", _set(["sensors", 0, "lags"], list(range(1, 10))), "sensors[0].lags",
     "1..8"),
    ("esp32-devkit", _set(["sensors", 0, "lags"], [2, "4"]), "sensors[0].lags[1]",
     "expected an integer"),
    ("esp32-devkit", _set(["sensors", 0, "s"], 13), "sensors[0].s", "4..12"),
    ("esp32-devkit", _set(["sensors", 0, "s"], 3), "sensors[0].s", "4..12"),
    ("esp32-devkit", _set(["sensors", 0, "s0"], 7), "sensors[0].s0", "0..6"),
    ("esp32-devkit", _set(["sensors", 0, "omega"], 65536), "sensors[0].omega", "0..65535"),
    ("esp32-devkit", _set(["sensors", 0, "ic"], 0), "sensors[0].ic", "1..32767"),
    ("esp32-devkit", _set(["sensors", 0, "hysteresis"], 22938), "sensors[0].hysteresis",
     "0..22937"),
    ("esp32-devkit", _set(["sensors", 0, "dwell"], 0), "sensors[0].dwell", "1..1048576"),
    ("esp32-devkit", _set(["sensors", 0, "mul"], 0), "sensors[0].mul", "non-zero"),
    ("esp32-devkit", _set(["sensors", 0, "shift"], 15), "sensors[0].shift", "0..14"),
    ("esp32-devkit", _set(["sensors", 0, "offset"], 1 << 29), "sensors[0].offset", "2**29"),
    ("esp32-devkit", _set(["sensors", 0, "offset"], 70000), "sensors[0].offset",
     "16-bit ADC range"),
    ("esp32-devkit", _set(["sensors", 1, "name"], "light"), "sensors[1].name",
     "already the name of sensors[0]"),
    ("esp32-devkit", _set(["sensors", 1, "name"], "Mic!"), "sensors[1].name", "[a-z0-9_-]"),
    ("esp32-devkit", _set(["sensors", 1, "name"], "x" * 17), "sensors[1].name", "1..16"),
    ("esp32-devkit", _set(["sensors", 1, "pin"], 40), "sensors[1].pin",
     "40 is not an ADC pin on esp32-devkit (32-39)"),
    ("esp32-devkit", _set(["sensors", 0, "pin"], 25), "sensors[0].pin",
     "while Wi-Fi (mqtt) is used"),
    ("esp32-devkit", _set(["sensors", 3, "pin"], 7), "sensors[3].pin",
     "not a usable GPIO on esp32-devkit"),
    ("esp32-devkit", _set(["sensors", 3, "pin"], 36), "sensors[3].pull",
     "no internal pull"),
    ("esp32-devkit", _set(["sensors", 3, "pull"], "sideways"), "sensors[3].pull",
     "not one of"),
    ("esp32-devkit", _set(["sensors", 0, "kind"], "lidar"), "sensors[0].kind",
     "'lidar' is not one of"),
    ("esp32-devkit", _set(["sensors", 0, "kind"], "mcu_temp"), "sensors[0].pin",
     "unknown key"),
    ("esp32-devkit", _append_sensor({"name": "t", "kind": "mcu_temp"}), "sensors[4].kind",
     "no usable internal temperature"),
    ("esp32-devkit", _set(["sensors", 2, "i2c", "addr"], 0x40), "sensors[2].i2c.addr",
     "not a BME280 address"),
    ("esp32-devkit", _set(["sensors", 2, "i2c", "bus"], 2), "sensors[2].i2c.bus",
     "not an I2C bus"),
    ("esp32-devkit", _set(["sensors", 2, "field"], "altitude"), "sensors[2].field",
     "not one of"),
    ("esp32-devkit", _del(["sensors", 2, "i2c"]), "sensors[2].i2c", "missing"),
    ("esp32-devkit", _set(["sensors", 2, "i2c", "sda"], 2), "outputs[0].pin",
     "already used by sensors[2].i2c"),
    ("esp32-devkit", _set(["outputs", 0, "pin"], 35), "outputs[0].pin", "input-only"),
    ("esp32-devkit", _set(["outputs", 0, "pin"], "LED"), "outputs[0].pin",
     "not a named led pin"),
    ("esp32-devkit", _set(["outputs", 1, "pin"], 2), "outputs[1].pin",
     "already used by outputs[0].pin"),
    ("esp32-devkit", _set(["outputs", 1, "kind"], "laser"), "outputs[1].kind", "not one of"),
    ("esp32-devkit", _set(["outputs", 1, "name"], "led"), "outputs[1].name", "already"),
    ("esp32-devkit", _set(["outputs", 2, "freq"], 0), "outputs[2].freq", "1..40000"),
    ("esp32-devkit", _set(["transports"], ["serial", "lora"]), "transports[1]",
     "'lora' is not one of"),
    ("esp32-devkit", _set(["transports"], []), "transports", "1..3"),
    ("esp32-devkit", _set(["transports"], ["serial", "serial"]), "transports[1]", "twice"),
    ("esp32-devkit", _set(["wifi"], False), "transports[1]", "'mqtt' needs Wi-Fi"),
    ("esp32-devkit", _set(["ble"], "yes"), "ble", "expected true or false"),
    ("esp32-devkit", _set(["watchdog_ms"], 500), "watchdog_ms", "too short"),
    ("esp32-devkit", lambda b: b.update(watchdog_ms=1000, period_ms=300), "watchdog_ms",
     "> 4 * period_ms = 1200"),
    ("esp32-devkit", _set(["period_ms"], 2500), "watchdog_ms", "> 4 * period_ms = 10000"),
    ("esp32-devkit", _set(["adc_bits"], 12), "adc_bits", "read_u16"),
    ("esp32-devkit", _set(["board"], "Bad Board"), "board", "[a-z0-9_-]"),
    ("esp32-devkit", _set(["chip"], "rp2040"), "chip", "esp32-devkit is a esp32"),
    ("pico", _set(["wifi"], True), "wifi", "pico has no Wi-Fi"),
    ("pico", _set(["transports"], ["serial", "ble"]), "transports[1]", "needs Bluetooth"),
    ("pico", _set(["watchdog_ms"], 9000), "watchdog_ms", "0..8388"),
    ("pico", _set(["sensors", 0, "pin"], 29), "sensors[0].pin",
     "29 is not an ADC pin on pico (26-28)"),
    ("pico", _append_sensor({"name": "env", "kind": "bme280",
                             "i2c": {"bus": 0, "sda": 2, "scl": 3}}),
     "sensors[4].i2c.sda", "not an SDA pin of I2C bus 0"),
    ("pico-w", _set(["outputs", 0, "pin"], 25), "outputs[0].pin",
     "25 is not a usable GPIO on pico-w"),
    ("pico-w", _set(["sensors", 2, "i2c", "scl"], None), "sensors[2].i2c", "both sda and scl"),
    ("pi-zero-w", _set(["sensors", 4, "pull"], "up"), "sensors[4].pull", "sysfs"),
    ("pi-zero-w", _append_sensor({"name": "light", "kind": "adc", "pin": 4}), "sensors[5].kind",
     "needs an ADC; pi-zero-w has none"),
    ("pi-zero-w", _set(["outputs", 1, "pin"], 22), "outputs[1].pin", "no hardware PWM"),
    ("pi-zero-w", _set(["outputs"], [{"name": "p", "kind": "neopixel", "pin": 18}]),
     "outputs[0].kind", "no NeoPixel"),
    ("pi-zero-w", _set(["sensors", 1, "i2c", "sda"], 4), "sensors[1].i2c.sda",
     "not an SDA pin of I2C bus 1"),
    ("pi-zero-w", _set(["adc_bits"], 12), "adc_bits", "no ADC"),
    ("sim", _set(["sensors", 2, "burst_len"], 4096), "sensors[2].burst_len", "0..2048"),
    ("sim", _set(["sensors", 0, "period"], 1), "sensors[0].period", "2..65535"),
    ("sim", _set(["runtime"], "micropython"), "runtime", "runs 'any'"),
    ("sim", _custom, "chip", "custom board must name its chip"),
    ("sim", _set(["chip"], "z80"), "chip", "'z80' is not one of"),
]


@pytest.mark.parametrize(
    ("name", "edit", "field", "fragment"), BAD, ids=[f"{b[0]}:{b[2]}" for b in BAD]
)
def test_bad_board_is_rejected_naming_the_field(name, edit, field, fragment):
    data = raw(name)
    edit(data)
    with pytest.raises(BoardError) as info:
        validate_board(data)
    msg = str(info.value)
    assert msg.startswith(f"{field}: "), msg
    assert fragment in msg, msg
    assert info.value.path == field
    assert "\n" not in msg


def test_board_error_is_a_value_error():
    assert issubclass(BoardError, ValueError)
    with pytest.raises(ValueError, match=r"^\(top level\): expected an object"):
        validate_board([1, 2])


def test_lags_like_the_kernel_for_many_inputs():
    """Whatever the kernel refuses, the validator refuses (and vice versa)."""
    cases = [[1], [1024], [1, 2, 3, 4, 5, 6, 7, 8], [], [0], [3, 3], [5, 4], [1025],
             [1, 2, 3, 4, 5, 6, 7, 8, 9], [2.0], [True]]
    for lags in cases:
        data = raw("sim")
        data["sensors"][0]["lags"] = lags
        try:
            Channel(lags=tuple(lags))
            kernel_ok = not any(isinstance(x, bool) for x in lags)  # JSON has no bool ints
        except ValueError:
            kernel_ok = False
        try:
            validate_board(data)
            ours_ok = True
        except BoardError:
            ours_ok = False
        assert ours_ok == kernel_ok, lags


def test_esp32_adc2_pins_are_fine_without_wifi():
    data = raw("esp32-devkit")
    data["transports"] = ["serial"]
    data["sensors"][0]["pin"] = 25
    data["outputs"] = [o for o in data["outputs"] if o["pin"] != 25]
    assert validate_board(data)["sensors"][0]["pin"] == 25


# -- files --------------------------------------------------------------------


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(BoardError) as info:
        load_board("esp8266")
    assert "unknown board 'esp8266'" in str(info.value)
    for name in SHIPPED:
        assert name in str(info.value)


def test_bad_json_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "board": "broken",\n  "title": "x"\n  "runtime": "any"\n}\n')
    with pytest.raises(BoardError, match=r"invalid JSON at line 4, column 3"):
        load_board(path)


def test_board_id_must_match_file_name(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(raw("pico")))
    with pytest.raises(BoardError, match=r"^board: 'pico' does not match the file name"):
        load_board(path)


def test_missing_file(tmp_path):
    with pytest.raises(BoardError, match="no such file"):
        load_board(tmp_path / "nope.json")


# -- node configs -------------------------------------------------------------


def node(**kw):
    cfg = {"node": "kitchen-1", "board": "esp32-devkit"}
    cfg.update(kw)
    return cfg


def mqtt_node(**kw):
    cfg = node(transport="mqtt", wifi={"ssid": "home", "password": SECRET},
               mqtt={"host": "hub.local", "password": MQTT_SECRET})
    cfg.update(kw)
    return cfg


def test_node_config_defaults():
    cfg = boards.validate_node_config(node())
    assert cfg["transport"] == "serial"  # the board's first
    assert cfg["seed"] == 1 and "mqtt" not in cfg
    cfg = boards.validate_node_config(mqtt_node())
    assert cfg["mqtt"] == {"host": "hub.local", "port": 1883, "user": None,
                           "password": MQTT_SECRET, "prefix": "becomingone", "keepalive": 30}


def test_node_config_spool_is_known():
    # What the firmware accepts (firmware/node/config.py) and the flash tool may write.
    for spool in ({"slots": 16, "size": 512}, {"slots": 2}, {"size": 0}, {},
                  {"file": "spool.bin", "file_slots": 750}, {"file": ""}, {"file_slots": 0}):
        assert boards.validate_node_config(node(spool=spool))["spool"] == spool
        assert merged_config(load_board("pico"), node(board="pico", spool=spool))["spool"] == spool


def test_merged_config_is_node_over_board():
    board = load_board("esp32-devkit")
    sensors = [{"name": "only", "kind": "adc", "pin": 33, "offset": 32768, "shift": 1}]
    merged = merged_config(board, mqtt_node(period_ms=50, report_every=20, weight=9,
                                            sensors=sensors, seed=7))
    assert (merged["period_ms"], merged["report_every"], merged["weight"]) == (50, 20, 9)
    assert [s["name"] for s in merged["sensors"]] == ["only"]
    assert merged["sensors"][0]["lags"] == [2, 4, 8, 16]  # defaults filled
    assert merged["node"] == "kitchen-1" and merged["transport"] == "mqtt"
    assert merged["seed"] == 7 and merged["mqtt"]["port"] == 1883
    assert merged["wifi"] == {"ssid": "home", "password": SECRET}  # as the firmware merges
    assert merged["outputs"] == board["outputs"] and merged["title"] == board["title"]
    channel_of(merged["sensors"][0])
    assert board["period_ms"] == 20  # the board is not modified


def test_merged_config_rechecks_the_watchdog_with_the_new_period():
    with pytest.raises(BoardError, match=r"^watchdog_ms: .* > 4 \* period_ms = 8000"):
        merged_config(load_board("esp32-devkit"), node(period_ms=2000))


BAD_NODES = [
    ({"board": "pico"}, "node", "missing"),
    (node(node="kitchen 1"), "node", "[A-Za-z0-9_.-]"),
    (node(node="x" * 33), "node", "1..32"),
    (node(board="esp8266"), "board", "unknown board"),
    (node(transport="ble", board="pico"), "transport", "not a transport of pico (serial)"),
    (node(transport="mqtt"), "wifi", "missing"),
    (node(transport="mqtt", wifi={"ssid": "home", "password": SECRET}), "mqtt", "missing"),
    (mqtt_node(mqtt={"host": "hub", "port": 70000, "password": MQTT_SECRET}), "mqtt.port",
     "1..65535"),
    (node(wifi={"ssid": "home", "password": 12345}), "wifi.password", "expected a string"),
    (node(wifi={"ssid": "home", "pasword": SECRET}), "wifi.password", "missing"),
    (node(wifi={"ssid": "home", "password": SECRET, "psk": SECRET}), "wifi.psk",
     "unknown key"),
    (node(sensors=[{"name": "x", "kind": "adc", "pin": 40}]), "sensors[0].pin",
     "not an ADC pin"),
    (node(weight=0), "weight", "1..255"),
    (node(colour="red"), "colour", "unknown key"),
    (node(seed=-1), "seed", "0..1073741823"),
    (node(hal="pi"), "hal", "not 'pi'"),
    (node(spool=8), "spool", "expected an object"),
    (node(spool={"slots": 1}), "spool.slots", "1 is out of range 2..1024"),
    (node(spool={"size": 5000}), "spool.size", "out of range 0..4096"),
    (node(spool={"slots": 8, "bytes": 9}), "spool.bytes", "unknown key"),
    (node(spool={"slots": "8"}), "spool.slots", "expected an integer"),
    (node(spool={"file": 5}), "spool.file", "a path of at most 200 chars"),
    (node(spool={"file": "x" * 201}), "spool.file", "a path of at most 200 chars"),
    (node(spool={"file_slots": -1}), "spool.file_slots", "out of range 0..100000"),
]


@pytest.mark.parametrize(("cfg", "field", "fragment"), BAD_NODES,
                         ids=[f"{i}:{b[1]}" for i, b in enumerate(BAD_NODES)])
def test_bad_node_config_is_rejected_naming_the_field(cfg, field, fragment):
    with pytest.raises(BoardError) as info:
        boards.validate_node_config(cfg)
    msg = str(info.value)
    assert msg.startswith(f"{field}: ") and fragment in msg, msg
    assert SECRET not in msg and MQTT_SECRET not in msg


def test_secrets_never_leak_even_when_misplaced():
    # A password pasted into the wrong field is masked in the message.
    cfg = mqtt_node()
    cfg["mqtt"]["host"] = SECRET + " oops"
    cfg["wifi"]["password"] = SECRET
    with pytest.raises(BoardError) as info:
        boards.validate_node_config(cfg)
    assert info.value.path == "mqtt.host"
    assert SECRET not in str(info.value) and "***" in str(info.value)
    cfg = mqtt_node(node="x" * 40 + SECRET)  # long values are not cut mid-secret
    with pytest.raises(BoardError) as info:
        boards.validate_node_config(cfg)
    assert info.value.path == "node" and SECRET[:4] not in str(info.value)
    cfg = mqtt_node()
    cfg["mqtt"]["password"] = ["not", "a", MQTT_SECRET]
    with pytest.raises(BoardError) as info:
        boards.validate_node_config(cfg)
    assert str(info.value) == "mqtt.password: expected a string, got a list"


# -- the CLI ------------------------------------------------------------------


def test_cli_lists_boards(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out
    assert "ESP32 DevKit v1 (ESP32-WROOM-32)" in out and "micropython" in out
    assert "serial,mqtt,ble" in out and "light(adc)" in out and "wave16(sim)" in out


def test_cli_checks_boards_and_node_configs(capsys, tmp_path):
    cfg = tmp_path / "kitchen-1.json"
    cfg.write_text(json.dumps(mqtt_node(spool={"slots": 16, "size": 512})))
    files = [str(boards.boards_dir() / f"{n}.json") for n in SHIPPED] + [str(cfg)]
    assert main(["boards", "check", *files]) == 0
    assert capsys.readouterr().out.splitlines() == [f"ok: {f}" for f in files]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{\n  \"board\": ", "invalid JSON at line 2, column 12"),
        (json.dumps({**raw("pico"), "weight": 0}), "weight: 0 is out of range 1..255"),
        (json.dumps(node(transport="mqtt", wifi={"ssid": "h", "password": SECRET})),
         "mqtt: missing"),
    ],
)
def test_cli_check_errors_are_one_line(capsys, tmp_path, content, fragment):
    path = tmp_path / "pico.json"
    path.write_text(content)
    assert main(["boards", "check", str(path)]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith(f"becomingone: {path}: ") and fragment in err, err
    assert len(err.strip().splitlines()) == 1
    assert SECRET not in err and SECRET not in captured.out


def test_cli_check_needs_files(capsys):
    assert main(["boards", "check"]) == 1
    assert capsys.readouterr().err.startswith("becomingone: ")


def test_copies_are_independent():
    a = load_board("sim")
    b = copy.deepcopy(a)
    a["sensors"][0]["lags"].append(99)
    assert load_board("sim") == b


@pytest.mark.micropython
def test_micropython_json_reads_every_board_and_builds_its_kernels():
    from support.mp import ROOT, MicroPython

    vm = MicroPython(root=ROOT)
    try:
        vm.run("sys.path.insert(0, '/input/shared')\nimport json\n"
               "from kairos import Channel, Normalizer")
        for name in SHIPPED:
            out = vm.run(
                "with open('/input/boards/%s.json') as f:\n"
                "    b = json.load(f)\n"
                "for s in b['sensors']:\n"
                "    n = Normalizer(s['offset'], s['mul'], s['shift'])\n"
                "    c = Channel(lags=tuple(s['lags']), s=s['s'], s0=s['s0'], omega=s['omega'],\n"
                "                ic=s['ic'], hysteresis=s['hysteresis'], dwell=s['dwell'])\n"
                "    c.step(n(12345))\n"
                "print(b['board'], len(b['sensors']), len(b['outputs']))\n" % name
            )
            board = load_board(name)
            assert out.split() == [name, str(len(board["sensors"])), str(len(board["outputs"]))]
    finally:
        vm.close()
