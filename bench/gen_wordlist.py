"""Generate assetmon_tui/data/subdomains.txt, the brute-force wordlist.

Written from words chosen by hand for real infrastructure (services,
products, environments, regions) and combined the way operations teams name
hosts: numbered variants (mail2, web01), environment prefixes and suffixes
(dev-api, api-stg), regions (eu-west-1, api-eu). Nothing is downloaded.

Order matters: the most likely names come first, because recursive brute
force under sub-zones only uses the head of the list.

    python bench/gen_wordlist.py            # writes the file, prints the count
"""

from __future__ import annotations

import os
import re

OUT = os.path.join(os.path.dirname(__file__), "..", "assetmon_tui", "data", "subdomains.txt")

# Most common first (roughly how often they show up on the internet).
TOP = """
www mail webmail smtp pop pop3 imap ftp sftp ssh mx mx1 mx2 ns ns1 ns2 ns3 ns4 dns dns1 dns2
api dev staging stage test qa uat preprod prod vpn admin portal remote blog shop store cdn static
assets img images media files download downloads uploads upload news forum community support help
docs wiki status app apps dashboard login sso auth id account accounts my secure intranet extranet
owa autodiscover exchange m mobile beta demo sandbox backup db mysql redis cache monitor search crm
erp hr careers jobs partners legacy old git gitlab jenkins ci build grafana kibana prometheus metrics
logs sentry jira confluence vault bastion proxy gateway lb edge web cloud office chat meet promo
marketing events analytics payments billing pay checkout console panel internal corp registry docker
harbor k8s nagios
""".split()

SERVICES = """
web1 web2 www1 www2 www3 mail1 mail2 mail3 smtp1 smtp2 relay mailgw mailhost email emails imap4 pop3s
lists list newsletter mailman postfix zimbra roundcube horde autoconfig lyncdiscover lync sip meet2
teams skype webconf conference video voip pbx asterisk phone tel fax sms
api1 api2 api3 apis apigw api-gateway gw graphql rest soap ws wss rpc grpc webhook webhooks hooks callback
auth2 oauth oauth2 oidc saml adfs idp identity iam login2 signin signup register sso2 keycloak okta cas
ldap ldaps ad dc dc1 dc2 kerberos radius pki ca crl ocsp certs cert acme
portal2 customer customers client clients partner supplier suppliers vendor vendors reseller affiliates
member members user users profile profiles people staff employee employees team teams hub
admin2 administrator adm manage manager management mgmt cp cpanel whm plesk webmin directadmin ispconfig
cms wp wordpress drupal joomla magento shopify prestashop woocommerce ghost typo3 umbraco sitecore
store2 shop2 cart basket order orders catalog catalogue products product pricing quote quotes invoice
invoices billing2 payment pay2 paypal stripe subscription subscriptions checkout2 ecommerce commerce
db1 db2 db3 database databases sql mssql postgres postgresql pg pgsql mariadb oracle mongo mongodb
cassandra couchdb couchbase elastic elasticsearch es es1 solr opensearch neo4j influx influxdb clickhouse
memcache memcached redis1 redis2 rabbit rabbitmq mq amqp kafka zookeeper zk nats activemq queue queues
broker etcd consul nomad vault2 secrets
git2 svn hg code repo repos repository source sources scm bitbucket github gitea gogs gerrit review
ci2 cd jenkins2 bamboo teamcity travis drone circleci buildkite argo argocd spinnaker tekton concourse
artifactory nexus artifacts packages pkg npm pypi maven nuget apt yum mirror mirrors repo1 dl
sonar sonarqube quality coverage qa2 selenium testlink testrail
docker2 registry2 quay k8s1 kube kubernetes rancher openshift okd eks aks gke cluster clusters node
nodes master worker workers swarm mesos marathon helm istio linkerd traefik ingress envoy
grafana2 kibana2 prom alertmanager alerts alert thanos loki tempo jaeger zipkin tracing trace apm
newrelic datadog splunk graylog logstash fluentd elk siem syslog log logging audit zabbix icinga
cacti munin observium librenms prtg netdata uptime uptimekuma statuspage health healthcheck ping
monitoring monitor2 stats statistics report reports reporting bi tableau metabase superset looker
redash powerbi kpi insights data datalake warehouse dwh etl airflow spark hadoop hdfs hive presto
trino jupyter notebook notebooks rstudio ml ai model models mlflow kubeflow gpu
jira2 confluence2 wiki2 kb knowledge knowledgebase faq helpdesk servicedesk desk ticket tickets
tracker issues bugs bugzilla redmine trac youtrack mantis otrs zendesk freshdesk intercom
chat2 slack mattermost rocketchat rocket zulip matrix element irc xmpp jabber discourse
calendar cal dav caldav carddav contacts drive share sharepoint files2 filer fs nas nfs smb cifs
storage s3 minio ceph object objects blob bucket buckets backup2 backups bak archive archives dr
vpn2 vpn1 openvpn wireguard ipsec sslvpn anyconnect globalprotect gp fortigate forti paloalto pulse
citrix netscaler xenapp xendesktop rdp rdweb rds ts terminal vdi horizon view workspace desktop
remote2 access jump jumphost jumpbox bastion2 gateway2 firewall fw fw1 waf router switch core
proxy2 squid socks relay2 nat dmz edge2 lb1 lb2 loadbalancer haproxy f5 bigip nginx apache iis
tomcat jboss wildfly weblogic websphere glassfish jetty node nodejs php python java dotnet ruby
static2 cdn2 cdn1 assets2 img2 images2 media2 video2 videos stream streaming live tv radio podcast
content cms2 dam photos photo gallery pics pic thumbs thumbnails icons fonts css js scripts
blog2 news2 press pressroom newsroom events2 event webinar webinars training learn learning lms
academy education edu university courses course school students student library research labs lab
careers2 jobs2 recruiting recruitment talent hr2 payroll benefits expenses travel timesheet time
erp2 sap crm2 salesforce dynamics odoo netsuite workday hris finance accounting treasury legal
compliance risk security sec infosec soc cert2 bugbounty trust privacy gdpr cookie cookies consent
marketing2 promo2 promos campaign campaigns offers offer deals coupon coupons loyalty rewards
survey surveys feedback forms form go link links url short r click track tracking pixel tag tags
analytics2 ga gtm piwik matomo mixpanel segment ads ad adserver banner banners affiliate
mobile2 m2 android ios app2 appstore play mobileapi mapi mobile-api wap touch
admin-api internal-api public-api partner-api private-api api-v1 api-v2 v1 v2 v3 beta2 alpha preview
next new old2 legacy2 classic archive2 v4 origin origin-www www-origin direct
search2 find discover directory dir maps map geo location locations gis weather
office2 o365 outlook mail365 smtp-out mailout bounce bounces return dkim spf dmarc mta-sts
home homepage main site sites web3 webserver webapp webapps application applications service services
svc microservice backend backends frontend front fe be server servers host hosts srv vps vm
intra intranet2 corp2 corporate internal2 private priv local localhost lan office-vpn branch hq
extranet2 partnerportal supplierportal b2b b2c edi sftp2 ftp2 ftps file transfer mft upload2 exchange2
owa2 ews activesync mdm enroll enrollment intune airwatch mobileiron jamf sccm wsus kms
print printer printers scan scanner camera cameras cctv nvr iot sensor sensors scada plc hmi
dev2 dev1 test1 test2 stage2 staging2 uat2 qa1 prod2 prod1 demo2 sandbox2 lab2 poc pilot trial
feature features canary green blue red black white shadow mirror2 replica standby failover primary
secondary spare temp tmp old3 new2 www-dev www-test www-staging dev-www test-www
dyn dynamic ddns dhcp vpn-pool pool clients-dyn
""".split()

ENVS = """
dev development test testing qa uat stg stage staging preprod pre-prod prod production live sandbox
demo int integration perf load stress sit e2e poc lab hotfix release rc canary preview
""".split()

ENV_SHORT = ("dev", "test", "qa", "uat", "stg", "stage", "staging", "preprod", "prod", "sandbox", "demo",
             "int", "perf", "sit")

COMBINE = """
api app www web admin portal auth sso login gateway gw cms shop store mobile m static cdn assets
media img files docs blog search payments pay billing checkout db mysql redis cache mq kafka es
grafana kibana jenkins gitlab git ci registry docker k8s vpn mail smtp owa crm erp hr jira wiki
monitor metrics logs sentry vault proxy lb edge backend frontend service svc internal partner
customer account accounts my dashboard console panel reports analytics data upload download
""".split()

REGIONS = """
eu us uk de fr nl es it se no dk fi pl ch at be ie pt cz ro hu gr ca mx br ar cl co au nz jp kr cn hk
sg in id my th ph vn za ae sa il tr ru ua apac emea amer latam na sa asia europe africa global intl
east west north south central
us-east us-west eu-west eu-central eu-north ap-southeast ap-northeast ap-south ca-central sa-east
us-east-1 us-east-2 us-west-1 us-west-2 eu-west-1 eu-west-2 eu-west-3 eu-central-1 eu-north-1
ap-southeast-1 ap-southeast-2 ap-northeast-1 ap-south-1 ca-central-1 sa-east-1
""".split()

REGION_COMBINE = ("api", "app", "www", "cdn", "vpn", "mail", "portal", "gw", "edge", "lb", "static", "auth",
                  "shop", "store", "origin", "proxy", "db", "k8s")

NUMBERED = """
web www app api mail smtp mx ns dns db sql srv server host node vm vps lb proxy gw fw vpn cache redis
es kafka mq worker jenkins build ci git dc ad exch owa citrix rdp ts print backup nas san esx esxi
vcenter hv kvm ldap mon log
""".split()


def clean(word: str) -> str | None:
    word = word.strip().lower()
    if not word or len(word) > 63 or not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", word):
        return None
    return word


def generate() -> list[str]:
    out: dict[str, None] = {}

    def add(*words: str) -> None:
        for w in words:
            w = clean(w)
            if w:
                out.setdefault(w, None)

    add(*TOP)
    add(*SERVICES)
    add(*ENVS)
    for word in NUMBERED:  # web1..web9, web01..web20
        add(*(f"{word}{i}" for i in range(1, 10)))
    for word in COMBINE:  # dev-api, api-dev, apidev, devapi, api.dev
        for env in ENV_SHORT:
            add(f"{env}-{word}", f"{word}-{env}")
    for word in COMBINE[:40]:
        for env in ENV_SHORT[:8]:
            add(f"{env}{word}", f"{word}{env}", f"{word}.{env}")
    add(*REGIONS)
    for word in REGION_COMBINE:
        for region in REGIONS:
            if "-" not in region or region.count("-") == 1:
                add(f"{word}-{region}", f"{region}-{word}")
        for region in REGIONS[:30]:
            add(f"{word}.{region}")
    for word in NUMBERED:
        add(*(f"{word}{i:02d}" for i in range(1, 21)), *(f"{word}-{i:02d}" for i in range(1, 11)))
    for env in ENV_SHORT:  # numbered environments: dev1, dev-2, uat03
        add(*(f"{env}{i}" for i in range(1, 10)), *(f"{env}-{i}" for i in range(1, 6)),
            *(f"{env}{i:02d}" for i in range(1, 6)))
    return list(out)


def main() -> None:
    words = generate()
    with open(OUT, "w") as fh:
        fh.write("\n".join(words) + "\n")
    print(f"{len(words)} words -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
