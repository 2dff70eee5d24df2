"""The dashboard (/ui) in a real browser: headless Chromium driven by chromium-driver through
Selenium, against a real `qinling serve --auth token`. A member signs in with a token,
creates a function by uploading a file, invokes it and reads its result and log, watches the
live chart count 50 more executions, reads usage; a member of another project cannot see the
function; a bad token is refused. Screenshots go to $UI_ARTIFACTS (default
target/ui-artifacts); the browser console must stay free of errors.

Usage: dashboard_test.py [QINLING_BINARY]
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "qinling")
ARTIFACTS = os.environ.get("UI_ARTIFACTS", os.path.join(ROOT, "target", "ui-artifacts"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

HELLO = 'def main(name="World", **kw):\n    print("hi", name)\n    return "Hello, " + name\n'


class Server:
    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="qinling-ui-")
        self.log_path = os.path.join(self.data, "server.log")
        args = [BIN, "serve", "--data-dir", self.data, "--listen", "127.0.0.1:0", "--pool-size", "1",
                "--auth", "token"]
        if os.geteuid() != 0:
            print("note: not root: the server runs functions without the sandbox (--insecure-no-sandbox)")
            args.append("--insecure-no-sandbox")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stderr=self.log, stdout=self.log)
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline and not self.url:
            with open(self.log_path) as f:
                m = re.search(r"listen=([0-9.:]+)", f.read())
            if m:
                self.url = "http://" + m.group(1)
            elif self.proc.poll() is not None:
                with open(self.log_path) as f:
                    raise RuntimeError("server exited:\n" + f.read())
            else:
                time.sleep(0.1)
        if not self.url:
            with open(self.log_path) as f:
                raise RuntimeError("server did not start:\n" + f.read())

    def token(self, project, user, roles="member"):
        out = subprocess.run([BIN, "token", "create", "--data-dir", self.data, "--project", project,
                              "--user", user, "--roles", roles], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def api(self, method, path, token, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"X-Auth-Token": token, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.server = Server()
        cls.alice = cls.server.token("alpha", "alice")
        cls.bob = cls.server.token("beta", "bob")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800",
                    "--disable-gpu"]:
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        cls.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        # The page re-renders as it loads: an element found a moment ago may be gone; look again.
        cls.wait = WebDriverWait(cls.driver, 60, ignored_exceptions=[NoSuchElementException,
                                                                     StaleElementReferenceException])
        cls.console = []

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.stop()

    def shot(self, name):
        path = os.path.join(ARTIFACTS, name + ".png")
        self.driver.save_screenshot(path)
        print("screenshot:", path)

    def console_errors(self):
        """Console entries at level SEVERE since the last call."""
        entries = self.driver.get_log("browser")
        self.console.extend(entries)
        return [e for e in entries if e["level"] == "SEVERE"]

    def wait_text(self, css, pattern):
        """The text of `css` once it matches `pattern`."""
        found = {}

        def matches(d):
            text = d.find_element(By.CSS_SELECTOR, css).text
            found["text"] = text
            return re.search(pattern, text)

        self.wait.until(matches)
        return found["text"]

    def sign_in(self, token):
        d = self.driver
        d.get(self.server.url + "/ui/#/login")
        box = self.wait.until(EC.element_to_be_clickable((By.ID, "token")))
        box.clear()
        box.send_keys(token)
        d.find_element(By.ID, "signin").click()

    def test_dashboard(self):
        d = self.driver
        # The page itself needs no token and goes to sign-in.
        d.get(self.server.url + "/ui")
        self.wait.until(EC.visibility_of_element_located((By.ID, "login-form")))
        self.shot("01-sign-in")

        # Sign in as alice (project alpha).
        self.sign_in(self.alice)
        self.wait_text("main h1", "^Functions$")

        # Create a function by uploading one file.
        src = os.path.join(tempfile.mkdtemp(), "hello.py")
        with open(src, "w") as f:
            f.write(HELLO)
        d.find_element(By.ID, "create-name").send_keys("hello-ui")
        d.find_element(By.ID, "create-file").send_keys(src)
        self.shot("02-create")
        d.find_element(By.ID, "create-submit").click()
        self.wait_text("main h1", "^Function hello-ui$")
        function_id = re.search(r"#/functions/([0-9a-f-]{36})", d.current_url).group(1)

        # Invoke it with an input: the result and the log show.
        d.find_element(By.ID, "invoke-input").send_keys('{"name": "browser"}')
        d.find_element(By.ID, "invoke-submit").click()
        self.assertIn("Hello, browser", self.wait_text("#execution-result", "Hello"))
        log = self.wait_text("#execution-log", "Finished execution")
        self.assertIn("hi browser", log)
        self.assertIn("Start execution", log)
        self.shot("03-invoked")

        # Edit the limits: saved, and shown when the page comes back.
        timeout = d.find_element(By.CSS_SELECTOR, "#edit-limits input[name=timeout]")
        timeout.clear()
        timeout.send_keys("7")
        d.find_element(By.CSS_SELECTOR, "#edit-limits button").click()
        self.wait_text("#toast", "Limits saved")
        self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#edit-limits input[name=timeout]")
                        .get_attribute("value") == "7")
        self.assertEqual(self.server.api("GET", "/v1/functions/" + function_id, self.alice)["timeout"], 7)

        # 50 executions more: the live chart counts them (it polls the server).
        for i in range(50):
            e = self.server.api("POST", "/v1/executions", self.alice,
                                {"function_id": function_id, "input": json.dumps({"name": "n%d" % i})})
            self.assertEqual(e["status"], "success", e)
        self.wait.until(lambda d: int(d.find_element(By.ID, "stat-executions").get_attribute("data-value") or 0) >= 51)
        self.assertGreaterEqual(int(d.find_element(By.ID, "chart-rate").get_attribute("data-total")), 51)
        self.shot("04-chart-after-50")

        # The executions page lists them; one opens with its log and usage figures.
        d.get(self.server.url + "/ui/#/executions?function_id=" + function_id)
        self.wait_text("main h1", "^Executions$")
        rows = self.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "main table tbody tr"))
        self.assertEqual(len(rows), 51)
        rows[0].find_element(By.CSS_SELECTOR, "a").click()
        self.wait_text("#execution-log", "Finished execution")
        self.assertIn("GiB-seconds", d.find_element(By.CSS_SELECTOR, "main").text)
        self.shot("05-execution")

        # Usage: the function's executions, GiB-seconds and a CSV export.
        d.get(self.server.url + "/ui/#/usage")
        self.assertIn("51 executions", self.wait_text("#usage-total", "executions"))
        d.find_element(By.ID, "usage-csv").click()
        self.shot("06-usage")

        # No console errors on any of that.
        self.assertEqual(self.console_errors(), [])

        # Bob, of another project, cannot see alice's function.
        d.find_element(By.ID, "signout").click()
        self.sign_in(self.bob)
        self.wait_text("main h1", "^Functions$")
        self.assertNotIn("hello-ui", d.find_element(By.CSS_SELECTOR, "main").text)
        d.get(self.server.url + "/ui/#/functions/" + function_id)
        self.assertIn("404", self.wait_text("#page-error", "404"))
        self.shot("07-blocked")
        # The only console errors: the browser's own note of the refused requests.
        for e in self.console_errors():
            self.assertRegex(e["message"], function_id + r".* 404", e)

        # A token the server does not know is refused at sign-in.
        d.find_element(By.ID, "signout").click()
        self.sign_in("qnl_not_a_real_token")
        self.assertIn("refused", self.wait_text("#login-error", "refused"))
        self.shot("08-bad-token")
        for e in self.console_errors():
            self.assertRegex(e["message"], r"/v1/functions .* 401", e)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
